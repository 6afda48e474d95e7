// Small building blocks shared by every page.

import { type ReactNode, type RefObject, useId, useLayoutEffect, useRef } from "react";

import type { SessionStatus } from "../api/types";
import { errorMessage, messagesFor } from "../lib/errors";

export function PageHead(props: { title: string; sub?: ReactNode; crumbs?: ReactNode; actions?: ReactNode }) {
  return (
    <div className="page-head">
      <div>
        {props.crumbs && <div className="crumbs">{props.crumbs}</div>}
        <h1>{props.title}</h1>
        {props.sub && <p>{props.sub}</p>}
      </div>
      {props.actions && <div className="row">{props.actions}</div>}
    </div>
  );
}

/** A labelled form control with the API's messages for `path` under it. */
export function Field(props: {
  label: string;
  hint?: ReactNode;
  error?: unknown;
  path?: string;
  prefix?: boolean;
  htmlFor?: string;
  children: ReactNode;
}) {
  const messages = props.path ? messagesFor(props.error, props.path, props.prefix) : [];
  return (
    <div className={`field${messages.length ? " invalid" : ""}`}>
      <label htmlFor={props.htmlFor}>{props.label}</label>
      {props.children}
      {messages.map((m, i) => (
        <div key={i} className="field-error" role="alert">
          {m}
        </div>
      ))}
      {props.hint && !messages.length && <div className="hint">{props.hint}</div>}
    </div>
  );
}

export function ErrorAlert({ error, extra }: { error: unknown; extra?: string[] }) {
  if (!error) return null;
  return (
    <div className="alert error" role="alert">
      {errorMessage(error)}
      {extra && extra.length > 0 && (
        <ul>
          {extra.map((m, i) => (
            <li key={i}>{m}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <div className="empty">
      <span className="spinner" /> Loading {what}…
    </div>
  );
}

export function Empty(props: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <h3>{props.title}</h3>
      {props.children}
    </div>
  );
}

/** The parts of a React Query result that `QueryList` reads: a page of `items` from the API. */
export interface ListQuery<T> {
  isPending: boolean;
  error: unknown;
  data: { items: T[] } | undefined;
}

/**
 * A list's loading, error, empty and filled states, drawn the same way on every page.
 *
 * React Query keeps the last data when a refetch fails. By default the error replaces the rows, so
 * nobody acts on rows that may be gone; `keepStaleOnError` shows the last rows with the error under
 * them instead, for a page that polls and should not go blank while the server is briefly away.
 */
export function QueryList<T>(props: {
  query: ListQuery<T>;
  what: string;
  empty: ReactNode;
  keepStaleOnError?: boolean;
  children: (items: T[]) => ReactNode;
}) {
  const { query } = props;
  if (query.isPending) return <Loading what={props.what} />;
  const error = query.error ? (
    <div className="card-body">
      <ErrorAlert error={query.error} />
    </div>
  ) : null;
  if (!query.data || (error && !props.keepStaleOnError)) return error;
  const { items } = query.data;
  return (
    <>
      {items.length ? props.children(items) : props.empty}
      {error}
    </>
  );
}

/**
 * A `QueryList` drawn as the console's table: a heading per column ("" for the row actions
 * column), then the row `children` draws for each item, keyed by the caller.
 */
export function QueryTable<T>(props: {
  query: ListQuery<T>;
  what: string;
  empty: ReactNode;
  keepStaleOnError?: boolean;
  columns: string[];
  children: (item: T) => ReactNode;
}) {
  const { columns, children: row, ...list } = props;
  return (
    <QueryList {...list}>
      {(items) => (
        <table className="table">
          <thead>
            <tr>
              {columns.map((c, i) => (
                <th key={i}>{c}</th>
              ))}
            </tr>
          </thead>
          <tbody>{items.map((item) => row(item))}</tbody>
        </table>
      )}
    </QueryList>
  );
}

/** A table row's last cell, its buttons; clicks there do not reach a clickable row. */
export function RowActions({ children }: { children: ReactNode }) {
  return (
    <td className="actions" onClick={(e) => e.stopPropagation()}>
      {children}
    </td>
  );
}

/**
 * A modal dialog on the browser's own `<dialog>`: the page behind it is inert, Tab stays inside,
 * Escape or a click on the backdrop closes it, and focus goes back where it was when it closes.
 * `initialFocus` takes the focus when it opens (by default the first control inside does).
 */
export function Modal(props: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  footer: ReactNode;
  role?: "dialog" | "alertdialog";
  initialFocus?: RefObject<HTMLElement | null>;
  describedBy?: string;
}) {
  const { onClose, initialFocus } = props;
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useLayoutEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const opener = document.activeElement;
    if (!dialog.open) dialog.showModal();
    initialFocus?.current?.focus();
    return () => {
      dialog.close();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    };
  }, [initialFocus]);
  return (
    <dialog
      ref={ref}
      className="modal"
      role={props.role}
      aria-labelledby={titleId}
      aria-describedby={props.describedBy}
      onCancel={(e) => {
        e.preventDefault(); // Escape: the page decides whether the dialog goes away
        onClose();
      }}
      onMouseDown={(e) => e.target === e.currentTarget && onClose()}
    >
      <div className="modal-content">
        <header>
          <h2 id={titleId}>{props.title}</h2>
        </header>
        <div className="body">{props.children}</div>
        <footer>{props.footer}</footer>
      </div>
    </dialog>
  );
}

const STATUS_COLOR: Record<SessionStatus, string> = {
  created: "",
  active: "blue",
  completed: "green",
  failed: "red",
  abandoned: "",
};

export function StatusBadge({ status }: { status: SessionStatus }) {
  return (
    <span className={`badge ${STATUS_COLOR[status]}`}>
      <span className="dot" />
      {status}
    </span>
  );
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(undefined, {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

export function formatDuration(start: string | null, end: string | null): string {
  if (!start || !end) return "—";
  const s = Math.max(0, (new Date(end).getTime() - new Date(start).getTime()) / 1000);
  return s < 60 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
