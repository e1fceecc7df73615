/**
 * Names a new mailbox may not have, as Dovecot refuses them on create and
 * rename (mailbox_verify_create_name, mailbox_list_is_valid_name):
 * - a level named like the format's own directory for mail files: in sdbox
 *   and mdbox, `dbox-Mails` holds a mailbox's messages, so a child mailbox
 *   of that name IS its parent's mail ("Contains reserved name"): renaming
 *   it away took the parent's messages along;
 * - a level starting with `~` (it would read as a home directory);
 * - control characters.
 */
import { InvalidArgumentError } from "../shared/errors.js";
import type { MailDriver } from "./location.js";

/** Per format, the directory names a mailbox level may not take (formats not listed: none). */
const RESERVED_LEVELS: Partial<Readonly<Record<MailDriver, readonly string[]>>> = {
  sdbox: ["dbox-Mails"],
  mdbox: ["dbox-Mails"],
  dbox: ["dbox-Mails"],
};

/**
 * @throws InvalidArgumentError when `name` ("/"-separated) may not be
 *   created or renamed to in a `driver` store.
 */
export function checkNewMailboxName(name: string, driver: MailDriver): void {
  if (/[\x00-\x1f\x7f]/.test(name)) throw new InvalidArgumentError(`invalid mailbox name ${JSON.stringify(name)}: Control characters not allowed in new mailbox names`);
  for (const level of name.split("/")) {
    if (RESERVED_LEVELS[driver]?.includes(level)) throw new InvalidArgumentError(`invalid mailbox name ${JSON.stringify(name)}: Contains reserved name "${level}"`);
    if (level.startsWith("~")) throw new InvalidArgumentError(`invalid mailbox name ${JSON.stringify(name)}: a level may not begin with "~"`);
  }
}
