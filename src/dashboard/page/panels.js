/*
 * The panels, in drawing order. A panel is a factory, `create({ redraw })`, that finds its
 * elements (index.html), attaches its own listeners and returns `{ render(screen), resize?(),
 * restyle?() }`: `render` draws from the screen (views.js screenOf), `resize` follows the page's
 * width, `restyle` the colour scheme. A panel keeps nothing but its own DOM bookkeeping, in its
 * closure; what it shows lives in the model. A new panel (the workers panel) is a module of its
 * own, its section in index.html, and one line here; a feed it needs is one name in model.js FEEDS.
 */
import { createAlerts } from "./alerts.js";
import { createCharts } from "./charts.js";
import { createGatewayPanel } from "./gateway.js";
import { createFigures, createHeader } from "./header.js";
import { createKpis } from "./kpis.js";
import { createRunsPanel } from "./runs.js";
import { createAgentTable, createTaskTable } from "./tables.js";
import { createTimeline } from "./timeline.js";
import { createWorkersPanel } from "./workers.js";

export const PANELS = Object.freeze([
  createHeader,
  createFigures,
  createCharts,
  createTimeline,
  createTaskTable,
  createAgentTable,
  createKpis,
  createAlerts,
  createGatewayPanel,
  createWorkersPanel,
  createRunsPanel,
]);
