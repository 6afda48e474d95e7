// The one "are you sure?" dialog of the console, for actions that cannot be undone.

import { type ReactNode, useId, useRef } from "react";

import { ErrorAlert, Modal } from "./ui";

/**
 * Asks before a destructive action. An `alertdialog` that says what will happen; Cancel has the
 * focus (Enter does no harm), Escape cancels; the confirming button waits while `pending`, and
 * the action's error shows in the dialog, which stays open so it can be retried.
 */
export function ConfirmDialog(props: {
  title: string;
  /** What happens, in a sentence or two. */
  children: ReactNode;
  /** The confirming button's label, naming the action: "Delete agent". */
  confirm: string;
  onConfirm: () => void;
  onCancel: () => void;
  pending?: boolean;
  error?: unknown;
}) {
  const cancel = useRef<HTMLButtonElement>(null);
  const descriptionId = useId();
  return (
    <Modal
      role="alertdialog"
      title={props.title}
      onClose={props.onCancel}
      initialFocus={cancel}
      describedBy={descriptionId}
      footer={
        <>
          <button ref={cancel} className="btn" onClick={props.onCancel}>
            Cancel
          </button>
          <button className="btn solid-danger" disabled={props.pending} onClick={props.onConfirm}>
            {props.confirm}
          </button>
        </>
      }
    >
      <p id={descriptionId} style={{ margin: 0 }}>
        {props.children}
      </p>
      <ErrorAlert error={props.error} />
    </Modal>
  );
}
