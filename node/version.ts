/** The Mycelium release and the wire protocol's major version (peers must share it). */
export const VERSION = "0.1.0";
export const PROTOCOL_MAJOR = 1;
