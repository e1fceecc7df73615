/**
 * New Maildir base names as Dovecot makes them (maildir-mbox.md A2):
 * `<unix secs>.M<usecs>P<pid>.<hostname>`, all decimal without padding, e.g.
 * `1795342195.M492400P10989.vm`. Within one process a name never repeats:
 * when the clock has not moved past the previous name, the microseconds are
 * bumped by one (carrying into the seconds), as Dovecot does.
 */
import * as os from "node:os";
import { InvalidArgumentError } from "../../shared/errors.js";
import { wallClockMs } from "../../shared/wall-clock.js";

export interface UniqueNameParts {
  /** Wall-clock time in microseconds since the epoch; default now. */
  readonly nowUsecs?: number;
  readonly pid?: number;
  readonly hostname?: string;
}

function nowUsecs(): number {
  return Math.floor(wallClockMs() * 1000);
}

/** Makes unique base names; one instance per process is what Dovecot has. */
export class MaildirUniqueNames {
  private lastUsecs = 0;

  /**
   * @returns a base name later (in secs+usecs) than every name this instance
   *   returned before.
   * @throws InvalidArgumentError when the host name contains `/`, `:` or a
   *   control character (the name would be a path or carry a flags part).
   */
  next(parts: UniqueNameParts = {}): string {
    const host = parts.hostname ?? os.hostname();
    if (host === "" || /[/:\x00-\x1f]/.test(host)) {
      throw new InvalidArgumentError(`host name "${host}" cannot be used in a maildir file name`);
    }
    let t = Math.floor(parts.nowUsecs ?? nowUsecs());
    if (t <= this.lastUsecs) t = this.lastUsecs + 1;
    this.lastUsecs = t;
    const secs = Math.floor(t / 1_000_000);
    const usecs = t - secs * 1_000_000;
    return `${secs}.M${usecs}P${parts.pid ?? process.pid}.${host}`;
  }
}

const processNames = new MaildirUniqueNames();

/** @returns a new base name from this process's generator. See {@link MaildirUniqueNames.next}. */
export function newMaildirBaseName(parts: UniqueNameParts = {}): string {
  return processNames.next(parts);
}
