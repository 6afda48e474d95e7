import { describe, expect, it } from "vitest";

import { ApiError, errorFromResponse, messagesFor } from "./errors";
import { allPlaced, isE164, normalizeNumber, numberHint, parseAddresses, placeErrors } from "./phone";

describe("normalizeNumber", () => {
  it("drops the punctuation people type in a dialled number", () => {
    expect(normalizeNumber(" +1 (555) 010-0123 ")).toBe("+15550100123");
    expect(normalizeNumber("+33 6.12.34.56.78")).toBe("+33612345678");
    expect(normalizeNumber("0612 345 678")).toBe("0612345678");
  });

  it("leaves what is not a dialled number for the API to judge", () => {
    expect(normalizeNumber(" support ")).toBe("support");
    expect(normalizeNumber("+1 555 abc")).toBe("+1 555 abc");
    expect(normalizeNumber("()-")).toBe("()-");
    expect(normalizeNumber("")).toBe("");
  });
});

describe("isE164", () => {
  it("wants a +, a country code that is not 0, and 15 digits at most", () => {
    expect(isE164("+15550100")).toBe(true);
    expect(isE164("+441234567890")).toBe(true);
    expect(isE164("15550100")).toBe(false);
    expect(isE164("+05550100")).toBe(false);
    expect(isE164("+1234567890123456")).toBe(false);
  });
});

describe("numberHint", () => {
  it("says what will be saved when it differs from what was typed", () => {
    expect(numberHint("+1 555 0100")).toBe("Saved as +15550100");
    expect(numberHint("+15550100")).toBeNull();
    expect(numberHint("")).toBeNull();
  });

  it("warns about a number without a country code", () => {
    expect(numberHint("555-0100")).toMatch(/^5550100 is not in international form/);
  });
});

describe("parseAddresses", () => {
  it("splits on lines, commas and spaces and drops blanks", () => {
    expect(parseAddresses("10.0.0.1\n\n 203.0.113.0/24, 198.51.100.7 ")).toEqual([
      "10.0.0.1",
      "203.0.113.0/24",
      "198.51.100.7",
    ]);
    expect(parseAddresses("  \n")).toEqual([]);
  });
});

describe("placeErrors", () => {
  it("puts a taken number on the number field", () => {
    const err = placeErrors(errorFromResponse(409, { detail: "This number is already assigned" }));
    expect(messagesFor(err, "number")).toEqual(["This number is already assigned"]);
    expect(allPlaced(err, ["number"])).toBe(true);
  });

  it("leaves a 409 of the call API (nothing to do with the number typed) as an alert", () => {
    const err = placeErrors(errorFromResponse(409, { detail: "Outbound calling is not configured" }), "to");
    expect(messagesFor(err, "to")).toEqual([]);
    expect(allPlaced(err, ["agent_id", "to"])).toBe(false);
  });

  it("puts a missing agent on the agent field and half the credentials on the password", () => {
    expect(messagesFor(placeErrors(errorFromResponse(404, { detail: "Agent x not found" })), "agent_id")).toEqual([
      "Agent x not found",
    ]);
    const auth = placeErrors(errorFromResponse(422, { detail: "auth_username and auth_password go together" }));
    expect(messagesFor(auth, "auth_password")[0]).toMatch(/both a user name and a password/);
  });

  it("rewrites pydantic's pattern message on a number in words", () => {
    const err = placeErrors(
      errorFromResponse(422, {
        detail: [{ loc: ["body", "to"], msg: "String should match pattern '^\\+?[0-9]{2,32}$'" }],
      }),
      "to",
    );
    expect(messagesFor(err, "to")).toEqual(["Not a phone number: use digits with an optional leading +, e.g. +15550100."]);
  });

  it("keeps other field messages and non-API errors as they are", () => {
    const err = placeErrors(new ApiError(422, "x", { name: ["too long"] }));
    expect(messagesFor(err, "name")).toEqual(["too long"]);
    const plain = new Error("boom");
    expect(placeErrors(plain)).toBe(plain);
    expect(allPlaced(plain, ["name"])).toBe(false);
  });
});
