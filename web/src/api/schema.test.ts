// The console's API types must be generated from the checked-in schema, which a Python test
// (tests/unit/test_openapi_schema.py) keeps equal to the control plane's.

import openapiTS, { type OpenAPI3 } from "openapi-typescript";
import { expect, it } from "vitest";

import schemaJson from "../../openapi.json?raw";
import generated from "./schema.d.ts?raw";

it("schema.d.ts is what `npm run gen:api` makes of openapi.json", async () => {
  const fresh = await openapiTS(JSON.parse(schemaJson) as OpenAPI3);
  expect(fresh === generated, "src/api/schema.d.ts is stale: run `npm run gen:api`").toBe(true);
});
