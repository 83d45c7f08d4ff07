// Fields KubeVirt and CDI added after @kubevirt-ui-ext/kubevirt-api's release,
// for scripts/gen-api.mjs. Descriptions are ours.
// Used by their own current examples (e.g. CDI's `http.insecureSkipVerify`). Applied to
// every package's copy of the type; dropped with a warning once the package
// has the field itself, so this list only shrinks.
export const newerFields = {
  V1beta1DataVolumeSourceHTTP: {
    checksum: { type: 'string', description: 'Expected checksum of the downloaded file, as "<algorithm>:<hash>" (md5, sha1, sha256 or sha512).' },
    insecureSkipVerify: { type: 'boolean', description: "Skip verification of the HTTP endpoint's certificate." },
  },
  V1beta1DataVolumeSourceImageIO: {
    insecureSkipVerify: { type: 'boolean', description: "Skip verification of the oVirt endpoint's certificate." },
  },
  V1beta1DataVolumeSourceVDDK: {
    certConfigMap: { type: 'string', description: 'ConfigMap holding the CA certificate of the vCenter or ESXi host.' },
  },
  V1beta1DataVolumeSpec: {
    serviceAccountName: { type: 'string', description: 'ServiceAccount the importer and uploader pods run as.' },
  },
  V1beta1DataImportCronSpec: {
    serviceAccountName: { type: 'string', description: 'ServiceAccount used to create the DataVolumes.' },
  },
  V1beta1CDIConfigSpec: {
    webhookPvcRendering: { type: 'string', description: 'Whether the PVC webhook completes PVC specs from StorageProfiles: "Enabled" (default) or "Disabled".' },
  },
  V1Interface: {
    portRanges: {
      type: 'array',
      description: 'Port ranges forwarded to the virtual machine (masquerade interfaces only; alpha). Mutually exclusive with ports.',
      'x-kubernetes-list-type': 'atomic',
      items: {
        type: 'object',
        required: ['protocol', 'start', 'end'],
        properties: {
          start: { type: 'integer', description: 'First port of the range.' },
          end: { type: 'integer', description: 'Last port of the range; not below start.' },
          protocol: { type: 'string', description: 'UDP or TCP.' },
        },
      },
    },
  },
  V1Network: {
    resourceClaim: {
      type: 'object',
      description: 'A network device requested through an entry of the VMI spec.resourceClaims (DRA; alpha).',
      properties: {
        claimName: { type: 'string', description: 'Name of the entry in spec.resourceClaims.' },
        requestName: { type: 'string', description: 'Name of the request within that claim.' },
      },
    },
  },
  V1VirtualMachineInstanceSpec: {
    serviceAccountName: { type: 'string', description: 'ServiceAccount the virt-launcher pod runs as; its token is not exposed to the guest.' },
  },
  V1MigrationConfiguration: {
    maxDowntimeMs: { type: 'integer', description: 'Longest tolerable switchover downtime, in milliseconds.' },
  },
  V1alpha1MigrationPolicySpec: {
    maxDowntimeMs: { type: 'integer', description: 'Longest tolerable switchover downtime, in milliseconds.' },
    experimental: { type: 'object', description: 'Experimental migration tunables (alpha).', 'x-kubernetes-preserve-unknown-fields': true },
  },
  V1KubeVirtConfiguration: {
    persistentReservationConfiguration: {
      type: 'object',
      description: 'Deployment of what SCSI persistent reservation in VMs needs.',
      properties: { enabled: { type: 'boolean', description: 'Deploy the pr-helper; default false.' } },
    },
  },
  V1beta1VirtualMachinePreferenceSpec: {
    preferredLaunchSecurity: { $ref: 'kubevirt:V1LaunchSecurity', description: 'The preferred LaunchSecurity.' },
  },
  V1VirtualMachineInstanceBackupStatus: {
    quiesceStatus: { type: 'string', description: 'Whether freezing the guest filesystems succeeded, failed or was skipped.' },
  },
  V1alpha1VirtualMachineBackupStatus: {
    exportUID: { type: 'string', description: 'UID of the VirtualMachineExport of a pull-mode backup.' },
  },
};
