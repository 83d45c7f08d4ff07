/** DataVolume imports: the importers (http, registry, blank, an uploaded stream), the node's import runner and upload receiver, and CDI's PVC annotations. */
export { cdiAnnotations, extraHeadersOf, importPhases, importSources } from './annotations.js';
export { ImportError } from './errors.js';
export type { ImportFailure } from './errors.js';
export { importImage, scratchDirOf } from './importer.js';
export type { ImportOptions } from './importer.js';
export type { HttpSource } from './http.js';
export type { StreamSource } from './stream.js';
export { UploadReceiver, uploadStates } from './upload-receiver.js';
export type { UploadOptions, UploadReceiverOptions, UploadResult } from './upload-receiver.js';
export { ImportRunner, wantsImport } from './runner.js';
export type { ImportRunnerOptions, ResolveTarget } from './runner.js';
export type { BlankSource, ImportProgress, ImportSource, ImportStage, ImportTarget, RegistrySource } from './types.js';
