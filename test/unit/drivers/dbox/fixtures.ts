/**
 * dbox files written by Dovecot 2.3.19 (doveadm save), byte for byte, for
 * tests that must not depend on doveadm being installed.
 */
const latin1 = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

/** sdbox u.1 saved from a CRLF message: stored with LF, V counts CRLF. */
export const SDBOX_U1 = latin1(
  "2 M1e C6b040977\n\x01\x02N          0000000000000028\nFrom: a@b\nSubject: hi\n\nbody line\nsecond\n" +
    "\n\x01\x03\nR6b040977\nV2d\nG7d94eb257709046b7d35000083ecc375\n\n",
);

/** mdbox m.1 with three messages (the second body has no final LF), each with B. */
export const MDBOX_M1 = latin1(
  "2 M1e C6b040977\n" +
    "\x01\x02N          000000000000001D\nFrom: a@b\nSubject: two\n\nbody\n" +
    "\n\x01\x03\nR6b040977\nV21\nG507364287709046b8135000083ecc375\nBINBOX\n\n" +
    "\x01\x02N          000000000000001F\nFrom: a@b\nSubject: three\n\nbody3" +
    "\n\x01\x03\nR6b040977\nV22\nG4e35b6297709046b8335000083ecc375\nBINBOX\n\n" +
    "\x01\x02N          000000000000001B\nFrom: a@b\nSubject: x\n\nbody\n" +
    "\n\x01\x03\nR6b0409d5\nV1f\nGd8284206d509046b1d38000083ecc375\nBINBOX\n\n",
);

/** sdbox u.1 saved with the zlib plugin (zlib_save=gz): Z holds the plaintext size and comes first. */
export const SDBOX_ZLIB_U1 = latin1(
  "2 M1e C6b040a21\n\x01\x02N          000000000000002F\n" +
    "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03s+\xca\xcf\xb5RHtH\xe2\n.M\xcaJM.\xb1R(\xe6\xe2\xaa\x18\x05H\x80\x0b\x00\xcc\xc2\xaa]%\x01\x00\x00" +
    "\n\x01\x03\nZ125\nR6b040a21\nV129\nG3d51c833210a046b983d000083ecc375\n\n",
);
