import { InvalidArgumentError } from "../shared/errors.js";
import { FLAG_KEYS, type SearchKey, type SearchQuery, type UidRange } from "../index.js";

/** A doveadm-style search query: which mailboxes, and which messages in them. */
export interface CliQuery {
  /** Mailbox names or `*`-patterns given with `mailbox`; empty = every mailbox. */
  mailboxes: string[];
  keys: SearchQuery;
}

/**
 * Parses the subset of doveadm's search query administrators use most:
 * `mailbox NAME`, `all`, `uid SET`, a sequence set, `seen`/`unseen`/
 * `deleted`/`flagged`/…, `keyword NAME`, `not KEY`, `or KEY KEY`, combined
 * with AND by juxtaposition.
 */
export function parseQuery(args: readonly string[]): CliQuery {
  const tokens = [...args];
  const query: CliQuery = { mailboxes: [], keys: [] };
  while (tokens.length > 0) {
    const key = parseKey(tokens, query);
    if (key) query.keys.push(key);
  }
  if (query.keys.length === 0 && query.mailboxes.length === 0) throw new InvalidArgumentError("empty search query");
  return query;
}

function parseKey(tokens: string[], query: CliQuery): SearchKey | undefined {
  const token = tokens.shift()!;
  const word = token.toLowerCase();
  const next = (what: string) => {
    const value = tokens.shift();
    if (value === undefined) throw new InvalidArgumentError(`search key ${token} needs a ${what}`);
    return value;
  };
  if (word === "mailbox") {
    query.mailboxes.push(next("mailbox name"));
    return undefined;
  }
  if (word === "all") return { type: "all" };
  if (word === "uid") return { type: "uid", ranges: parseSet(next("UID set")) };
  if (word === "keyword" || word === "unkeyword") return { type: "keyword", name: next("keyword"), set: word === "keyword" };
  if (word === "not") return { type: "not", key: requireKey(tokens, query, token) };
  if (word === "or") return { type: "or", keys: [requireKey(tokens, query, token), requireKey(tokens, query, token)] };
  if (word in FLAG_KEYS) return { type: "flag", ...FLAG_KEYS[word] };
  if (/^[\d*][\d*:,]*$/.test(token)) return { type: "seq", ranges: parseSet(token) };
  throw new InvalidArgumentError(`unknown search key "${token}"`);
}

function requireKey(tokens: string[], query: CliQuery, after: string): SearchKey {
  if (tokens.length === 0) throw new InvalidArgumentError(`${after} needs a search key`);
  const key = parseKey(tokens, query);
  if (!key) throw new InvalidArgumentError(`${after} cannot apply to a mailbox`);
  return key;
}

/** `1:3,7,10:*` → ranges; `*` is 0xffffffff (the highest present). */
export function parseSet(text: string): UidRange[] {
  return text.split(",").map((part) => {
    const [a, b = a] = part.split(":");
    const n = (s: string) => {
      if (s === "*") return 0xffffffff;
      if (!/^\d+$/.test(s) || Number(s) === 0) throw new InvalidArgumentError(`invalid message set "${text}"`);
      return Number(s);
    };
    const x = n(a);
    const y = n(b);
    return { uid1: Math.min(x, y), uid2: Math.max(x, y) };
  });
}
