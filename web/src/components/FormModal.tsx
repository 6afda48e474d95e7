// The dialog around a create or edit form: its fields, the API's messages no field shows,
// Cancel and the submitting button.

import { type FormEvent, type ReactNode } from "react";

import { unplacedMessages } from "../lib/errors";
import { allPlaced } from "../lib/phone";
import { ErrorAlert, Modal } from "./ui";

/**
 * A modal form. Enter in a field or the footer's button calls `onSubmit`; the button waits while
 * `pending`. `error` is the mutation's error as the fields read it; its messages for paths not
 * in `shown` (or one without field messages) appear in an alert under the fields.
 */
export function FormModal(props: {
  title: string;
  /** The submitting button's label: "Create key". */
  submit: string;
  onSubmit: () => void;
  onClose: () => void;
  pending: boolean;
  error: unknown;
  /** The API paths whose messages the form's fields show. */
  shown: string[];
  children: ReactNode;
}) {
  const { error, shown } = props;
  function submit(e?: FormEvent) {
    e?.preventDefault();
    props.onSubmit();
  }
  return (
    <Modal
      title={props.title}
      onClose={props.onClose}
      footer={
        <>
          <button className="btn" onClick={props.onClose}>
            Cancel
          </button>
          <button className="btn primary" onClick={() => submit()} disabled={props.pending}>
            {props.pending && <span className="spinner" />}
            {props.submit}
          </button>
        </>
      }
    >
      <form onSubmit={submit} className="stack" noValidate>
        {props.children}
        {error != null && !allPlaced(error, shown) && <ErrorAlert error={error} extra={unplacedMessages(error, shown)} />}
        <button type="submit" hidden />
      </form>
    </Modal>
  );
}
