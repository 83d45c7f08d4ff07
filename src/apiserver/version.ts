/** What `/version` reports: a Kubernetes minor within one of the kubectl versions we support (1.27–1.33). */
export const version = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0+vireo',
  gitCommit: 'vireo',
  gitTreeState: 'clean',
  buildDate: '2026-11-27T00:00:00Z',
  goVersion: 'n/a',
  compiler: 'n/a',
  platform: 'linux/amd64',
};
