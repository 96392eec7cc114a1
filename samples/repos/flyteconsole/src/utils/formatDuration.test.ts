import { describe, expect, it } from "vitest";
import { formatDuration } from "./formatDuration";

describe("formatDuration", () => {
  it("shows short durations in milliseconds", () => {
    expect(formatDuration(250)).toBe("250ms");
  });

  it("keeps the two largest units", () => {
    expect(formatDuration(3_723_000)).toBe("1h 2m");
    expect(formatDuration(90_061_000)).toBe("1d 1h");
  });

  it("skips zero units", () => {
    expect(formatDuration(3_600_000 + 5_000)).toBe("1h 5s");
  });

  it("marks invalid input", () => {
    expect(formatDuration(-1)).toBe("-");
    expect(formatDuration(Number.NaN)).toBe("-");
  });
});
