// The <script> tag build (widget.js): mounts the widget in the corner of the page it is in.
//   <script src="https://stimm.example.com/widget.js" data-key="stimm_pk_..." async></script>

import { scriptOptions } from "./options";
import { mountWidget } from "./widget";

const script = document.currentScript as HTMLScriptElement | null;
if (script) {
  const options = scriptOptions(script.src, { ...script.dataset });
  const mount = () => mountWidget(document.body, options, true);
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });
}
