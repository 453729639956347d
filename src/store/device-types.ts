/** Devices, the two ends of one, their live presence and the changes every node must hear of. */

/** Which end of a device a connection or a reading belongs to. */
export type Side = 'device' | 'client';
export const SIDES: readonly Side[] = ['device', 'client'];
export function otherSide(side: Side): Side {
  return side === 'device' ? 'client' : 'device';
}

export interface Device {
  id: string;
  userId: number;
  name: string;
  keyHash: string;
  createdAt: number;
  /** Last time any connection of the device was seen, ms since epoch; null if never. */
  lastSeen: number | null;
}

export interface DeviceStatus extends Device {
  /** Open device-side connections across all nodes. */
  online: boolean;
  clients: number;
}

/** Which devices the Home Assistant bridge shows: every device, those opted in, or these ids. */
export type BridgeChoice = 'all' | 'opted' | string[];

/** A device as the Home Assistant bridge reads it at each poll, all of them in one query. */
export interface BridgedDevice extends Device {
  /** Open device-side connections across all nodes. */
  online: boolean;
  /**
   * Changes whenever one of the device's latest values does (their count and the sum of their seqs: a sensor's
   * seq only grows, even where nodes commit out of seq order), so the bridge reads a device's sensors only then.
   */
  readingsMark: string;
}

/** A change that must close a device's live connections on every node. */
/** 'access': a share of the device was granted, changed or withdrawn (shared users' connections are rechecked). */
export type DeviceEventKind = 'rotated' | 'deleted' | 'access';
export interface DeviceEvent {
  seq: number;
  deviceId: string;
  kind: DeviceEventKind;
  at: number;
}

export interface PresenceEntry {
  deviceId: string;
  side: Side;
  connections: number;
}
