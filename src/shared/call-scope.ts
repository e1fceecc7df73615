import { AsyncLocalStorage } from "node:async_hooks";

/**
 * A value that follows one async call chain (AsyncLocalStorage), switched
 * off whenever no chain is inside run(). Node 20's AsyncLocalStorage
 * installs promise hooks on its first run() and keeps them for the life of
 * the process: every promise created afterwards pays for context
 * propagation, in every command that ever took a lock (a fetch of 20,000
 * messages: a fifth of its CPU). Disabling the storage when its last run()
 * ends removes the hooks until the next one. Outside every run(),
 * getStore() is undefined, as it is for a chain that never entered one.
 */
export class CallScope<T> {
  private readonly storage = new AsyncLocalStorage<T>();
  private active = 0;

  getStore(): T | undefined {
    return this.active > 0 ? this.storage.getStore() : undefined;
  }

  /** Runs `fn` with `value` as the store of its call chain. */
  async run<R>(value: T, fn: () => Promise<R>): Promise<R> {
    this.active++;
    try {
      return await this.storage.run(value, fn);
    } finally {
      if (--this.active === 0) this.storage.disable();
    }
  }
}
