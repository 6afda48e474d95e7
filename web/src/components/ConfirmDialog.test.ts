// Vitest runs these in Node without a DOM: a page that asks during its first render stands in for a click.

import { createElement, useState } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";

import { ApiError } from "../lib/errors";
import { type ConfirmedMutation, useConfirm } from "./ConfirmDialog";

interface Agent {
  id: string;
  name: string;
}

function mutation(state: Partial<ConfirmedMutation<string>> = {}): ConfirmedMutation<string> {
  return { mutate: () => {}, reset: () => {}, isPending: false, error: null, ...state };
}

function Page(props: { mutation: ConfirmedMutation<string>; ask?: Agent }) {
  const remove = useConfirm(props.mutation, (agent: Agent) => ({
    title: `Delete ${agent.name}?`,
    confirm: "Delete agent",
    text: "The agent and its settings are removed.",
    variables: agent.id,
  }));
  const [asked, setAsked] = useState(false);
  if (props.ask && !asked) {
    setAsked(true);
    remove.ask(props.ask);
  }
  return createElement("main", null, remove.dialog);
}

function render(m: ConfirmedMutation<string>, ask?: Agent): { text: string; html: string } {
  const html = renderToStaticMarkup(createElement(Page, { mutation: m, ask }));
  return { html, text: html.replace(/<[^>]*>/g, "") };
}

const GUIDE = { id: "a1", name: "Museum guide" };

describe("useConfirm", () => {
  it("shows nothing until asked", () => {
    expect(render(mutation()).html).toBe("<main></main>");
  });

  it("asks about the item in an alert dialog named by the title", () => {
    const { html, text } = render(mutation(), GUIDE);
    expect(html).toContain('role="alertdialog"');
    expect(text).toContain("Delete Museum guide?");
    expect(text).toContain("The agent and its settings are removed.");
    expect(html).toContain('<button class="btn">Cancel</button>');
    expect(html).toContain('<button class="btn solid-danger">Delete agent</button>');
    expect(html).not.toContain('role="alert"');
  });

  it("holds the confirming button while the mutation runs", () => {
    const { html } = render(mutation({ isPending: true }), GUIDE);
    expect(html).toContain('<button class="btn solid-danger" disabled="">Delete agent</button>');
  });

  it("shows the mutation's error in the dialog", () => {
    const { html, text } = render(mutation({ error: new ApiError(409, "The agent answers a phone number") }), GUIDE);
    expect(html).toContain('role="alert"');
    expect(text).toContain("The agent answers a phone number");
  });
});
