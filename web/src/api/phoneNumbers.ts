// Hooks over the control plane's telephony resources (control_plane/telephony/).

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api } from "./client";
import { useRefreshingMutation } from "./mutations";
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
  return useRefreshingMutation(phoneNumbersKey, (body: PhoneNumberCreate | PhoneNumberUpdate) =>
    id
      ? api.patch<PhoneNumber>(`/api/phone-numbers/${id}`, body)
      : api.post<PhoneNumber>("/api/phone-numbers", body),
  );
}

export function useDeletePhoneNumber() {
  return useRefreshingMutation(phoneNumbersKey, (id: string) => api.delete(`/api/phone-numbers/${id}`));
}

/** Have an agent phone `to`; resolves once the callee answered. */
export function usePlaceCall() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: CallCreate) => api.post<Call>("/api/calls", body),
    onSettled: () => qc.invalidateQueries({ queryKey: ["sessions"] }),
  });
}
