import { afterAll, beforeAll, expect, it } from "vitest";
import { connect } from "nats";
import { addStreamWhenPlaceable, NatsCluster } from "../../../bench/replication/nats-cluster.js";
import { describeNats } from "../../helpers/nats.js";

describeNats("a real 3-node nats-server cluster", () => {
  let cluster: NatsCluster;
  beforeAll(async () => {
    cluster = await NatsCluster.start(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("starts three JetStream nodes that replicate a stream ×3, and stops them by PID", async () => {
    const nc = await connect({ servers: cluster.servers });
    try {
      const jsm = await nc.jetstreamManager();
      // As the engine does (ReplicationConnection.open): a peer lagging under load may drop out of placement for a moment.
      const info = await addStreamWhenPlaceable(nc, { name: "T", subjects: ["t.>"], num_replicas: 3 }, Date.now() + 30_000);
      expect(info.config.num_replicas).toBe(3);
      const js = nc.jetstream();
      const ack = await js.publish("t.a", new Uint8Array([1]));
      expect(ack.seq).toBe(1);
      const again = await jsm.streams.info("T");
      expect(again.cluster?.replicas?.length).toBe(2);
    } finally {
      await nc.close();
    }
    expect(cluster.nodes.every((n) => typeof n.process?.pid === "number")).toBe(true);
  });
});
