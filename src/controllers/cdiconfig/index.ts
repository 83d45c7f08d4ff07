export { CdiConfigController, cdiConfigName, cdiConfigs, wantedUploadProxyUrl } from './controller.js';
