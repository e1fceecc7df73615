import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../../src/shared/errors.js";
import { parseFlagNames } from "../../../src/shared/flags.js";

describe("parseFlagNames", () => {
  it("splits system flags (any case) from keywords and drops \\Recent", () => {
    expect(parseFlagNames(["\\seen", "\\FLAGGED", "$Label1", "NonJunk", "\\Recent"])).toEqual({ flags: 0x08 | 0x02, keywords: ["$Label1", "NonJunk"] });
  });
  it("refuses 8-bit keywords, as doveadm does (\"8bit characters in keyword\"): IMAP clients could not name them back", () => {
    for (const bad of ["Grüße", "café", "caf\xe9", "日本"]) {
      expect(() => parseFlagNames([bad]), JSON.stringify(bad)).toThrow(/8bit characters in keyword/);
    }
  });
  it("refuses unknown system flags and keywords that are not IMAP atoms, as Dovecot does", () => {
    for (const bad of ["\\Bogus", "", "two words", "par(en", "brace{", "per%cent", "star*", 'quo"te', "back\\slash", "brack]et", "tab\t", "del\x7f"]) {
      expect(() => parseFlagNames([bad]), JSON.stringify(bad)).toThrow(InvalidArgumentError);
    }
  });
});
