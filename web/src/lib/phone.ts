// Phone numbers as people type them, and the API's errors about them placed on form fields.

import { ApiError } from "./errors";

const DIALLED = /^\+?[\d\s().-]+$/;
const E164 = /^\+[1-9]\d{1,14}$/;

/**
 * `+1 (555) 010-0123` → `+15550100123`: spaces, dots, dashes and brackets dropped from what looks
 * like a dialled number. Anything else (a SIP user name such as `support`) is only trimmed, and
 * the API judges it.
 */
export function normalizeNumber(input: string): string {
  const text = input.trim();
  if (!DIALLED.test(text) || !/\d/.test(text)) return text;
  const digits = text.replace(/[^\d]/g, "");
  return text.startsWith("+") ? `+${digits}` : digits;
}

/** `+` then a country code and at most 15 digits in all. */
export function isE164(number: string): boolean {
  return E164.test(number);
}

/** What to say under a number field while it is typed: what will be saved, or why it may not ring. */
export function numberHint(input: string): string | null {
  const number = normalizeNumber(input);
  if (!number) return null;
  if (isE164(number)) return number === input.trim() ? null : `Saved as ${number}`;
  if (DIALLED.test(number)) {
    return `${number} is not in international form (+ country code); it must match what your SIP provider sends exactly.`;
  }
  return null;
}

/** IP addresses or CIDR ranges, one per line or separated by commas or spaces. */
export function parseAddresses(text: string): string[] {
  return text
    .split(/[\s,;]+/)
    .map((a) => a.trim())
    .filter(Boolean);
}

const PATTERN_MISMATCH = /^String should match pattern/;

function readable(field: string, msg: string): string {
  if (PATTERN_MISMATCH.test(msg) && (field === "number" || field === "to")) {
    return "Not a phone number: use digits with an optional leading +, e.g. +15550100.";
  }
  return msg;
}

/**
 * The API answers some mistakes with a sentence rather than a field list (a number that is taken,
 * an agent that is gone, half of the digest credentials): give each the field it is about, so the
 * form shows it there. `numberField` is `number` for phone numbers and `to` for calls.
 */
export function placeErrors(error: unknown, numberField: "number" | "to" = "number"): unknown {
  if (!(error instanceof ApiError)) return error;
  const fields: Record<string, string[]> = {};
  for (const [k, msgs] of Object.entries(error.fields)) fields[k] = msgs.map((m) => readable(k, m));
  const hasFields = Object.keys(error.fields).length > 0;
  if (!hasFields) {
    const msg = error.message;
    if (error.status === 409 && numberField === "number") fields.number = [msg];
    else if (error.status === 404 && /^Agent /.test(msg)) fields.agent_id = [msg];
    else if (error.status === 422 && /auth_username/.test(msg)) {
      fields.auth_password = ["Give both a user name and a password, or neither."];
    }
  }
  return new ApiError(error.status, error.message, fields);
}

/** Whether every message of `error` has a field on the form (then no separate alert is needed). */
export function allPlaced(error: unknown, shown: string[]): boolean {
  if (!(error instanceof ApiError)) return false;
  const keys = Object.keys(error.fields);
  return keys.length > 0 && keys.every((k) => shown.some((s) => k === s || k.startsWith(s + ".")));
}
