import { describe, expect, it } from "vitest";

import {
  ApiError,
  errorFromResponse,
  fieldPath,
  messagesFor,
  unplacedMessages,
} from "./errors";

describe("fieldPath", () => {
  it("drops the request location and joins the rest", () => {
    expect(fieldPath(["body", "llm", 0, "model"])).toBe("llm.0.model");
    expect(fieldPath(["query", "limit"])).toBe("limit");
  });

  it("drops the tag pydantic adds inside a discriminated union", () => {
    expect(fieldPath(["body", "tools", 1, "webhook", "url"])).toBe("tools.1.url");
  });

  it("keeps a field literally named like a tag when it is not inside a list", () => {
    expect(fieldPath(["body", "webhook"])).toBe("webhook");
  });
});

describe("errorFromResponse", () => {
  it("maps a 422 to messages per field", () => {
    const err = errorFromResponse(422, {
      detail: [
        { loc: ["body", "name"], msg: "String should have at least 1 character", type: "x" },
        { loc: ["body", "llm", 0, "model"], msg: "Value error, unknown model 'gpt-9'", type: "y" },
        { loc: ["body", "llm", 0, "options", "base_url"], msg: "required", type: "z" },
      ],
    });
    expect(err.status).toBe(422);
    expect(err.message).toBe("3 fields need attention.");
    expect(messagesFor(err, "name")).toEqual(["String should have at least 1 character"]);
    expect(messagesFor(err, "llm.0.model")).toEqual(["unknown model 'gpt-9'"]);
    expect(messagesFor(err, "llm", true)).toEqual([
      "0.model: unknown model 'gpt-9'",
      "0.options.base_url: required",
    ]);
  });

  it("uses a string detail as the message", () => {
    const err = errorFromResponse(409, { detail: "Sessions refer to the agent" });
    expect(err.message).toBe("Sessions refer to the agent");
    expect(err.fields).toEqual({});
  });

  it("explains a refused key and a server failure without a body", () => {
    expect(errorFromResponse(401, null).message).toMatch(/API key/);
    expect(errorFromResponse(502, null).message).toMatch(/HTTP 502/);
  });
});

describe("unplacedMessages", () => {
  it("lists what no shown field covers, with the field named", () => {
    const err = new ApiError(422, "x", {
      name: ["too long"],
      "turn_taking.min_endpointing_delay": ["too big"],
      "": ["body is wrong"],
    });
    expect(unplacedMessages(err, ["name", "instructions"])).toEqual([
      "turn_taking.min_endpointing_delay: too big",
      "body is wrong",
    ]);
    expect(unplacedMessages(new Error("plain"), ["name"])).toEqual([]);
  });
});
