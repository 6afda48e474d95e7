import { useState } from "react";
import { Link } from "react-router";

import { useSavePhoneNumber } from "../api/phoneNumbers";
import type { Agent, PhoneNumber, PhoneNumberCreate, PhoneNumberUpdate } from "../api/types";
import { FormModal } from "../components/FormModal";
import { Field } from "../components/ui";
import { normalizeNumber, numberHint, parseAddresses, placeErrors } from "../lib/phone";

const SHOWN = ["number", "agent_id", "name", "allowed_addresses", "auth_username", "auth_password"];

/** Add a number (`number` undefined) or change the agent and access of one. */
export function PhoneNumberForm(props: { number?: PhoneNumber; agents: Agent[]; onClose: () => void }) {
  const { number: existing, agents, onClose } = props;
  const save = useSavePhoneNumber(existing?.id);
  const [number, setNumber] = useState(existing?.number ?? "");
  const [agentId, setAgentId] = useState(existing?.agent_id ?? (agents.length === 1 ? agents[0]!.id : ""));
  const [name, setName] = useState(existing?.name ?? "");
  const [addresses, setAddresses] = useState((existing?.allowed_addresses ?? []).join("\n"));
  const [auth, setAuth] = useState(!!existing?.auth_username);
  const [username, setUsername] = useState(existing?.auth_username ?? "");
  const [password, setPassword] = useState("");
  const err = placeErrors(save.error);

  function body(): PhoneNumberCreate | PhoneNumberUpdate {
    const common = {
      agent_id: agentId,
      name: name.trim() || null,
      allowed_addresses: parseAddresses(addresses),
    };
    if (!existing) {
      return {
        ...common,
        number: normalizeNumber(number),
        auth_username: auth ? username.trim() || null : null,
        auth_password: auth ? password || null : null,
      };
    }
    if (!auth) return { ...common, auth_username: null, auth_password: null };
    // An empty password keeps the stored one.
    return { ...common, auth_username: username.trim() || null, ...(password ? { auth_password: password } : {}) };
  }

  const hint = existing ? "A number cannot be changed: delete it and add the new one." : numberHint(number) ?? "International form, e.g. +15550100";
  return (
    <FormModal
      title={existing ? `Edit ${existing.number}` : "Add a phone number"}
      submit={existing ? "Save" : "Add number"}
      onSubmit={() => save.mutate(body(), { onSuccess: onClose })}
      onClose={onClose}
      pending={save.isPending}
      error={err}
      shown={SHOWN}
    >
      <div className="grid-2">
        <Field label="Number" htmlFor="pn-number" path="number" error={err} hint={hint}>
          <input
            id="pn-number"
            className="input mono"
            value={number}
            autoFocus={!existing}
            disabled={!!existing}
            placeholder="+15550100"
            onChange={(e) => setNumber(e.target.value)}
          />
        </Field>
        <Field label="Label" htmlFor="pn-name" path="name" error={err} hint="Optional, e.g. Front desk">
          <input id="pn-name" className="input" value={name} onChange={(e) => setName(e.target.value)} />
        </Field>
      </div>
      <Field
        label="Answered by"
        htmlFor="pn-agent"
        path="agent_id"
        error={err}
        hint={agents.length ? undefined : <Link to="/agents/new">Create an agent first</Link>}
      >
        <select id="pn-agent" className="select" value={agentId} onChange={(e) => setAgentId(e.target.value)}>
          <option value="">Choose an agent…</option>
          {agents.map((a) => (
            <option key={a.id} value={a.id}>
              {a.name}
            </option>
          ))}
        </select>
      </Field>
      <Field
        label="Allowed addresses"
        htmlFor="pn-addresses"
        path="allowed_addresses"
        prefix
        error={err}
        hint="IP addresses or CIDR ranges of your SIP provider, one per line. Empty: any address."
      >
        <textarea
          id="pn-addresses"
          className="textarea mono"
          rows={3}
          style={{ minHeight: 64 }}
          value={addresses}
          placeholder="203.0.113.0/24"
          onChange={(e) => setAddresses(e.target.value)}
        />
      </Field>
      <label className="check">
        <input type="checkbox" checked={auth} onChange={(e) => setAuth(e.target.checked)} />
        Require digest authentication
      </label>
      {auth && (
        <div className="grid-2">
          <Field label="User name" htmlFor="pn-auth-username" path="auth_username" error={err}>
            <input id="pn-auth-username" className="input" autoComplete="off" value={username} onChange={(e) => setUsername(e.target.value)} />
          </Field>
          <Field
            label="Password"
            htmlFor="pn-auth-password"
            path="auth_password"
            error={err}
            hint={existing?.auth ? "Stored encrypted, never shown. Type a new one to replace it." : "At least 8 characters."}
          >
            <input
              id="pn-auth-password"
              className="input"
              type="password"
              autoComplete="new-password"
              value={password}
              placeholder={existing?.auth ? "••••••••  (unchanged)" : ""}
              onChange={(e) => setPassword(e.target.value)}
            />
          </Field>
        </div>
      )}
    </FormModal>
  );
}
