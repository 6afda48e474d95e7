// Hooks over the control plane's telephony resources (control_plane/telephony/).

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api } from "./client";
import type {
  Call,
  CallCreate,
  PhoneNumber,
  PhoneNumberCreate,
  PhoneNumbersPage,
  PhoneNumberUpdate,
} from "./types";

const phoneNumbersKey = ["phone-numbers"] as const;

export function usePhoneNumbers() {
  return useQuery({
    queryKey: phoneNumbersKey,
    queryFn: () => api.get<PhoneNumbersPage>("/api/phone-numbers"),
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
    mutationFn: (body: CallCreate) => api.post<Call>("/api/calls", body),
    onSettled: () => qc.invalidateQueries({ queryKey: ["sessions"] }),
  });
}
