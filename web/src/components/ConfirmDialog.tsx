// The one "are you sure?" dialog of the console, for actions that cannot be undone.

import { type ReactNode, useId, useRef, useState } from "react";

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

/** The parts of a React Query mutation that `useConfirm` drives. */
export interface ConfirmedMutation<V> {
  mutate: (variables: V, options: { onSuccess: () => void }) => void;
  reset: () => void;
  isPending: boolean;
  error: unknown;
}

/** What the dialog says about one item, and the variables confirming runs the mutation with. */
export interface Confirmation<V> {
  title: string;
  confirm: string;
  text: ReactNode;
  variables: V;
}

/**
 * A `ConfirmDialog` before `mutation` runs on an item: `ask(item)` opens it, drawn as `describe`
 * says; it closes on Cancel or once the mutation succeeded, and then `onDone` runs. Render
 * `dialog` once on the page. Each opening starts without the last one's error.
 */
export function useConfirm<T, V>(
  mutation: ConfirmedMutation<V>,
  describe: (item: T) => Confirmation<V>,
  onDone?: () => void,
): { ask: (item: T) => void; dialog: ReactNode } {
  const [asked, setAsked] = useState<{ item: T } | null>(null);
  const close = () => {
    setAsked(null);
    mutation.reset();
  };
  const ask = (item: T) => setAsked({ item });
  if (!asked) return { ask, dialog: null };
  const c = describe(asked.item);
  const dialog = (
    <ConfirmDialog
      title={c.title}
      confirm={c.confirm}
      onConfirm={() =>
        mutation.mutate(c.variables, {
          onSuccess: () => {
            close();
            onDone?.();
          },
        })
      }
      onCancel={close}
      pending={mutation.isPending}
      error={mutation.error}
    >
      {c.text}
    </ConfirmDialog>
  );
  return { ask, dialog };
}
