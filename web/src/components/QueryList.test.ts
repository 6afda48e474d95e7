// Vitest runs these in Node without a DOM, so the component is rendered to markup and read as a user would.

import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";

import { ApiError } from "../lib/errors";
import { Empty, type ListQuery, QueryList, QueryTable } from "./ui";

interface Row {
  id: string;
  name: string;
}

const ROWS: Row[] = [
  { id: "w1", name: "worker-one" },
  { id: "w2", name: "worker-two" },
];
const DOWN = new ApiError(503, "Control plane unreachable");

function render(query: ListQuery<Row>, keepStaleOnError?: boolean): { text: string; html: string } {
  const html = renderToStaticMarkup(
    createElement(QueryList<Row>, {
      query,
      what: "workers",
      keepStaleOnError,
      empty: createElement(Empty, { title: "No workers running" }),
      children: (items: Row[]) =>
        createElement(
          "ul",
          null,
          items.map((r) => createElement("li", { key: r.id, "data-testid": "row" }, r.name)),
        ),
    }),
  );
  return { html, text: html.replace(/<[^>]*>/g, "") };
}

const alerts = (html: string) => html.match(/role="alert"/g)?.length ?? 0;
const rows = (html: string) => html.match(/data-testid="row"/g)?.length ?? 0;

describe("QueryList", () => {
  it("says what it is loading while the first answer is pending", () => {
    const { text, html } = render({ isPending: true, error: null, data: undefined });
    expect(text).toContain("Loading workers…");
    expect(rows(html)).toBe(0);
    expect(alerts(html)).toBe(0);
  });

  it("shows the rows the render prop draws", () => {
    const { text, html } = render({ isPending: false, error: null, data: { items: ROWS } });
    expect(rows(html)).toBe(2);
    expect(text).toContain("worker-one");
    expect(text).toContain("worker-two");
    expect(text).not.toContain("No workers running");
    expect(alerts(html)).toBe(0);
  });

  it("shows the page's empty message when the list is empty", () => {
    const { text, html } = render({ isPending: false, error: null, data: { items: [] } });
    expect(text).toContain("No workers running");
    expect(rows(html)).toBe(0);
  });

  it("shows the error as an alert when the first load fails", () => {
    for (const keep of [false, true]) {
      const { text, html } = render({ isPending: false, error: DOWN, data: undefined }, keep);
      expect(alerts(html)).toBe(1);
      expect(text).toContain("Control plane unreachable");
      expect(text).not.toContain("No workers running");
    }
  });

  it("replaces the last rows with the error when a refetch fails", () => {
    const { text, html } = render({ isPending: false, error: DOWN, data: { items: ROWS } });
    expect(alerts(html)).toBe(1);
    expect(text).toContain("Control plane unreachable");
    expect(rows(html)).toBe(0);
    expect(text).not.toContain("worker-one");
  });

  it("keeps the last rows next to the error when asked to", () => {
    const { text, html } = render({ isPending: false, error: DOWN, data: { items: ROWS } }, true);
    expect(rows(html)).toBe(2);
    expect(text).toContain("worker-one");
    expect(alerts(html)).toBe(1);
    expect(text).toContain("Control plane unreachable");
    // The error comes after the rows, so the table stays where it was.
    expect(text.indexOf("worker-two")).toBeLessThan(text.indexOf("Control plane unreachable"));
  });

  it("keeps a stale empty list's message next to the error when asked to", () => {
    const { text, html } = render({ isPending: false, error: DOWN, data: { items: [] } }, true);
    expect(text).toContain("No workers running");
    expect(alerts(html)).toBe(1);
  });
});

function renderTable(query: ListQuery<Row>): { text: string; html: string } {
  const html = renderToStaticMarkup(
    createElement(QueryTable<Row>, {
      query,
      what: "workers",
      empty: createElement(Empty, { title: "No workers running" }),
      columns: ["Worker", "Name", ""],
      children: (r: Row) =>
        createElement(
          "tr",
          { key: r.id, "data-testid": "row" },
          createElement("td", null, r.id),
          createElement("td", null, r.name),
          createElement("td", null, createElement("button", null, "Delete")),
        ),
    }),
  );
  return { html, text: html.replace(/<[^>]*>/g, "") };
}

describe("QueryTable", () => {
  it("heads the table with the columns, the unnamed one empty, and draws a row per item", () => {
    const { html } = renderTable({ isPending: false, error: null, data: { items: ROWS } });
    expect(html).toContain('<table class="table"><thead><tr><th>Worker</th><th>Name</th><th></th></tr></thead><tbody>');
    expect(rows(html)).toBe(2);
    expect(html.indexOf("worker-one")).toBeLessThan(html.indexOf("worker-two"));
    expect(html.match(/<button>Delete<\/button>/g)?.length).toBe(2);
  });

  it("draws no table while loading, when empty or when the load failed", () => {
    const cases: [ListQuery<Row>, string][] = [
      [{ isPending: true, error: null, data: undefined }, "Loading workers…"],
      [{ isPending: false, error: null, data: { items: [] } }, "No workers running"],
      [{ isPending: false, error: DOWN, data: { items: ROWS } }, "Control plane unreachable"],
    ];
    for (const [query, says] of cases) {
      const { html, text } = renderTable(query);
      expect(text).toContain(says);
      expect(html).not.toContain("<table");
      expect(html).not.toContain("<th>Worker</th>");
    }
  });
});
