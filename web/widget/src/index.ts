// @stimm/widget: the React component and the plain-DOM mount behind widget.js.

export { StimmWidget, type StimmWidgetProps } from "./react";
export { mountWidget, type MountedWidget } from "./widget";
export { type WidgetOptions } from "./options";
