// The ajv instance the schemas are compiled with: by the build (gen-validator.mjs, into
// standalone code) and by the schema test (a fresh compile to compare against).
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

/**
 * Strict mode, every error, verbose errors. `errorMessage` is an annotation (editors such as
 * VS Code and the YAML language server show it); talk's error mapper reads it through
 * `verbose` errors. Formats come from ajv-formats (only those the schema uses, so the
 * generated code imports little).
 */
export function createAjv(extra = {}, formats = ['uri']) {
  const ajv = new Ajv.default({
    strict: true,
    allErrors: true,
    verbose: true,
    allowUnionTypes: true,
    // `required` inside anyOf/oneOf branches names properties declared by the parent schema,
    // the usual way to say "one of these keys"; the strictRequired check cannot see that.
    strictRequired: false,
    ...extra,
  });
  addFormats.default(ajv, formats);
  ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
  return ajv;
}
