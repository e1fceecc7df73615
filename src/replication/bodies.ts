/**
 * Bodies too large to travel inside a stream message go through JetStream's
 * object store: it chunks them (128 KiB messages) into its own stream,
 * replicated like the log's, and checks a digest on read. Keyed by message
 * GUID, so a body copied to several mailboxes is stored once, and a replica
 * fetches it only when it applies the commit that saved it.
 * Smaller bodies travel inline, in the commit's own message: one round trip.
 */
import type { JetStreamClient, ObjectStore } from "nats";
import { ReplicationError } from "../shared/errors.js";
import { whileSettling } from "./settling.js";
import type { StreamNames } from "./subjects.js";

/** Inline bodies while the commit message stays below this (JetStream's default max_payload is 1 MiB). */
export const INLINE_BUDGET_BYTES = 512 * 1024;

export class BodyStore {
  private store: ObjectStore | undefined;
  constructor(private readonly js: JetStreamClient, private readonly names: StreamNames) {}

  private async bucket(): Promise<ObjectStore> {
    // Created with the first large body: the cluster may still be settling (see settling.ts).
    this.store ??= await whileSettling(Date.now() + 30_000, () => this.js.views.os(this.names.bodyBucket, { replicas: this.names.replicas }));
    return this.store;
  }

  /** Stores `body` under `guid` unless it is there with the same size. @returns the object name. */
  async put(guid: string, body: Uint8Array): Promise<string> {
    const os = await this.bucket();
    const info = await os.info(guid);
    if (info === null || info.deleted || info.size !== body.length) await os.putBlob({ name: guid }, body);
    return guid;
  }

  /** @throws ReplicationError when the object is missing. */
  async get(name: string): Promise<Uint8Array> {
    const os = await this.bucket();
    const data = await os.getBlob(name);
    if (data === null) throw new ReplicationError(`body ${name} is not in object store ${this.names.bodyBucket}`);
    return data;
  }
}
