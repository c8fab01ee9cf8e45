// The dashboard's files, bundled when rbee is (bundle.ts runs as a macro): imported lazily, on the first page view.
import { bundleDashboard } from "./bundle" with { type: "macro" };

export const dashboardAssets = bundleDashboard();
