// The widget as a React component, for sites built with React: the same widget as widget.js.
//   <StimmWidget server="https://stimm.example.com" publishableKey="stimm_pk_..." />

import { useEffect, useRef } from "react";

import type { WidgetOptions } from "./options";
import { mountWidget } from "./widget";

export interface StimmWidgetProps extends WidgetOptions {
  /** Fixed in the page's bottom-right corner instead of in place. */
  floating?: boolean;
  className?: string;
}

export function StimmWidget({ server, publishableKey, agentId, label, floating = false, className }: StimmWidgetProps) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!ref.current) return;
    const widget = mountWidget(ref.current, { server, publishableKey, agentId, label }, floating);
    return () => widget.destroy();
  }, [server, publishableKey, agentId, label, floating]);
  return <div ref={ref} className={className} />;
}
