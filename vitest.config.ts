import { defineConfig } from "vitest/config";

// Two cores: run test files in two forks; interop tests spawn doveadm processes.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
