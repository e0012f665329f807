/** Equal-width bins between `lo` and `hi`; `counts[i]` covers [lo + i*w, lo + (i+1)*w). */
export interface Histogram {
  readonly lo: number;
  readonly hi: number;
  readonly counts: number[];
}

export const HISTOGRAM_BINS = 32;

/** Bins the finite values; a zero-width range puts everything in the middle bin. */
export function histogram(values: ArrayLike<number>, lo: number, hi: number, bins = HISTOGRAM_BINS): Histogram {
  const counts = new Array<number>(bins).fill(0);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { lo: NaN, hi: NaN, counts };
  const width = (hi - lo) / bins;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    const k = width > 0 ? Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / width))) : bins >> 1;
    counts[k]++;
  }
  return { lo, hi, counts };
}
