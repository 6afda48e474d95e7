// Telephony resources of the control plane (control_plane/telephony/models.py) and their hooks.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api } from "./client";
import type { Page, SessionStatus } from "./types";

export interface PhoneNumber {
  id: string;
  number: string;
  agent_id: string;
  name: string | null;
  allowed_addresses: string[];
  auth_username: string | null;
  /** Whether a digest password is set; the password itself is never returned. */
  auth: boolean;
  trunk_id: string | null;
  dispatch_rule_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface PhoneNumberCreate {
  number: string;
  agent_id: string;
  name: string | null;
  allowed_addresses: string[];
  auth_username: string | null;
  auth_password: string | null;
}

/** Fields left out are kept; `auth_password` is only sent to replace it (or null to remove). */
export type PhoneNumberUpdate = Partial<Omit<PhoneNumberCreate, "number">>;

export type CallOutcome = "ringing" | "answered" | "completed" | "failed" | "busy" | "no-answer";

export interface Call {
  id: string;
  session_id: string;
  agent_id: string;
  room: string;
  direction: "inbound" | "outbound";
  caller: string | null;
  callee: string | null;
  outcome: CallOutcome;
  sip_status: number | null;
  failure_reason: string | null;
  status: SessionStatus;
  created_at: string;
}

const phoneNumbersKey = ["phone-numbers"] as const;

export function usePhoneNumbers() {
  return useQuery({
    queryKey: phoneNumbersKey,
    queryFn: () => api.get<Page<PhoneNumber>>("/api/phone-numbers"),
  });
}

export function useSavePhoneNumber(id: string | undefined) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: PhoneNumberCreate | PhoneNumberUpdate) =>
      id
        ? api.patch<PhoneNumber>(`/api/phone-numbers/${id}`, body)
        : api.post<PhoneNumber>("/api/phone-numbers", body),
    onSuccess: () => qc.invalidateQueries({ queryKey: phoneNumbersKey }),
  });
}

export function useDeletePhoneNumber() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api.delete(`/api/phone-numbers/${id}`),
    onSuccess: () => qc.invalidateQueries({ queryKey: phoneNumbersKey }),
  });
}

/** Have an agent phone `to`; resolves once the callee answered. */
export function usePlaceCall() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: { agent_id: string; to: string }) => api.post<Call>("/api/calls", body),
    onSettled: () => qc.invalidateQueries({ queryKey: ["sessions"] }),
  });
}
