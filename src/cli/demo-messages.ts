/** A small sample mailbox for `mailstore demo`: a few plausible messages. */
const PEOPLE = ["Ada Lovelace <ada@example.org>", "Charles Babbage <charles@example.org>", "Grace Hopper <grace@example.net>", "Alan Turing <alan@example.com>"];
const SUBJECTS = ["Notes on the Analytical Engine", "Re: Difference engine budget", "Compiler meeting on Tuesday", "On computable numbers (draft)", "Lunch?", "Re: Re: bug in the Mark II"];

export function demoMessages(count = 6): Array<{ body: string; receivedDate: Date }> {
  const out = [];
  for (let i = 0; i < count; i++) {
    const date = new Date(Date.UTC(2026, 10, 1 + i, 9, 30));
    const from = PEOPLE[i % PEOPLE.length];
    const to = PEOPLE[(i + 1) % PEOPLE.length];
    out.push({
      receivedDate: date,
      body: [
        `From: ${from}`,
        `To: ${to}`,
        `Subject: ${SUBJECTS[i % SUBJECTS.length]}`,
        `Date: ${date.toUTCString().replace("GMT", "+0000")}`,
        `Message-ID: <demo-${i + 1}@mailstore.example>`,
        "",
        `Message ${i + 1} of the mailstore demo.`,
        "",
      ].join("\n"),
    });
  }
  return out;
}
