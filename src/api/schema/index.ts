/**
 * OpenAPI v3 structural schemas at work: pruning, defaulting and validation
 * of objects (`compileSchema`), the structural check of CRD schemas
 * (`checkStructural`) and the per-group-version OpenAPI document kubectl
 * reads (`openApiDocument`).
 */
export { compileSchema } from './compile.js';
export type { CompiledSchema } from './compile.js';
export { checkStructural } from './structural.js';
export type { CheckStructuralOptions } from './structural.js';
export { definitionName, openApiDocument } from './openapi-doc.js';
