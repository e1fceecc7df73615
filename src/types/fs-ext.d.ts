/**
 * The part of fs-ext (a CommonJS native addon without type definitions) that
 * src/drivers/dbox/flock.ts uses. flockSync throws an Error carrying errno,
 * code (e.g. "EAGAIN") and syscall when flock(2) fails.
 */
declare module "fs-ext" {
  /** flock(2): "sh", "ex", "un", each optionally with "nb" (LOCK_NB), e.g. "exnb". */
  export function flockSync(fd: number, flags: "sh" | "ex" | "shnb" | "exnb" | "un"): void;
}
