// Vitest runs these in Node without a DOM, so the form is rendered to markup and read as a user would.

import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";

import { ApiError } from "../lib/errors";
import { FormModal } from "./FormModal";

function render(props: { pending?: boolean; error?: unknown }): { text: string; html: string } {
  const html = renderToStaticMarkup(
    createElement(FormModal, {
      title: "New webhook endpoint",
      submit: "Add endpoint",
      onSubmit: () => {},
      onClose: () => {},
      pending: props.pending ?? false,
      error: props.error ?? null,
      shown: ["url"],
      children: createElement("input", { id: "wh-url" }),
    }),
  );
  return { html, text: html.replace(/<[^>]*>/g, "") };
}

const alerts = (html: string) => html.match(/role="alert"/g)?.length ?? 0;
const invalid = (fields: Record<string, string[]>) =>
  new ApiError(422, "The request is not valid", fields);

describe("FormModal", () => {
  it("holds the fields in a form with Cancel and the named submit button", () => {
    const { html, text } = render({});
    expect(text).toContain("New webhook endpoint");
    expect(html).toContain('<form class="stack" noValidate=""><input id="wh-url"/>');
    expect(html).toContain('<button type="submit" hidden="">');
    expect(html).toContain('<button class="btn">Cancel</button>');
    expect(html).toContain('<button class="btn primary">Add endpoint</button>');
    expect(alerts(html)).toBe(0);
  });

  it("waits with a spinner while pending", () => {
    const { html } = render({ pending: true });
    expect(html).toContain('<button class="btn primary" disabled=""><span class="spinner"></span>Add endpoint</button>');
  });

  it("leaves to the fields an error whose every message they show", () => {
    const { html } = render({ error: invalid({ url: ["not a URL"] }) });
    expect(alerts(html)).toBe(0);
  });

  it("shows an error with messages no field shows, listing those", () => {
    const { html, text } = render({ error: invalid({ url: ["not a URL"], events: ["unknown event"] }) });
    expect(alerts(html)).toBe(1);
    expect(text).toContain("unknown event");
    expect(text).not.toContain("not a URL");
  });

  it("shows an error that is about no field", () => {
    const { html, text } = render({ error: new ApiError(503, "Control plane unreachable") });
    expect(alerts(html)).toBe(1);
    expect(text).toContain("Control plane unreachable");
  });
});
