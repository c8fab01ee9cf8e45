// Tokens/s and requests in flight over the last minutes, in total and per worker, drawn by uPlot from the queen's
// samples (one a second, five minutes kept).
import uPlot from "uplot";
import type { ClusterSample } from "../roles/queen/cluster-view";
import { byId } from "./dom";

const KEEP_SAMPLES = 300;
const COLORS = ["#e0a100", "#2a7ae2", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

type Metric = "tokens_per_s" | "inflight";

class Chart {
  private plot: uPlot | undefined;
  private seriesKey = "";

  constructor(
    private readonly target: HTMLElement,
    private readonly metric: Metric,
  ) {}

  draw(samples: ClusterSample[]): void {
    const workers = [...new Set(samples.flatMap((s) => Object.keys(s.workers)))].sort();
    const key = workers.join(",");
    const data: uPlot.AlignedData = [
      samples.map((s) => s.t / 1000),
      samples.map((s) => s[this.metric]),
      ...workers.map((id) => samples.map((s) => s.workers[id]?.[this.metric] ?? null)),
    ];
    const width = Math.max(280, this.target.clientWidth || 480);
    if (!this.plot || key !== this.seriesKey) {
      this.plot?.destroy();
      this.seriesKey = key;
      this.plot = new uPlot(
        {
          width,
          height: 180,
          legend: { show: true },
          scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
          series: [{}, { label: "total", stroke: COLORS[0], width: 2 }, ...workers.map((id, i) => ({ label: id, stroke: COLORS[(i + 1) % COLORS.length], width: 1 }))],
        },
        data,
        this.target,
      );
    } else {
      if (this.plot.width !== width) this.plot.setSize({ width, height: 180 });
      this.plot.setData(data);
    }
  }
}

export class Charts {
  private samples: ClusterSample[] = [];
  private readonly tokens = new Chart(byId("chart-tokens"), "tokens_per_s");
  private readonly inflight = new Chart(byId("chart-inflight"), "inflight");

  history(samples: ClusterSample[]): void {
    this.samples = samples.slice(-KEEP_SAMPLES);
    this.draw();
  }

  add(sample: ClusterSample): void {
    this.samples.push(sample);
    if (this.samples.length > KEEP_SAMPLES) this.samples.shift();
    this.draw();
  }

  private draw(): void {
    // A chart needs two points to draw a line.
    if (this.samples.length < 2) return;
    this.tokens.draw(this.samples);
    this.inflight.draw(this.samples);
  }
}
