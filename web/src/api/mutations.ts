// The wiring every create, update and delete shares: after it, the lists it changed are fetched again.

import { type QueryKey, useMutation, useQueryClient } from "@tanstack/react-query";

/** A mutation that, once `mutationFn` succeeded, refetches the queries under `refresh` before it settles. */
export function useRefreshingMutation<V, R>(refresh: QueryKey, mutationFn: (variables: V) => Promise<R>) {
  const qc = useQueryClient();
  return useMutation({ mutationFn, onSuccess: () => qc.invalidateQueries({ queryKey: refresh }) });
}
