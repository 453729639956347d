/** Accounts and how they sign in: users, web sessions, API tokens and sign-up invites. */

export interface User {
  id: number;
  email: string;
  name: string;
  passwordHash: string;
  createdAt: number;
}

export interface WebSession {
  /** sha256 of the session cookie's value; the value itself is never stored. */
  idHash: string;
  userId: number;
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
}

export interface ApiToken {
  id: number;
  userId: number;
  name: string;
  tokenHash: string;
  createdAt: number;
  lastUsed: number | null;
}

/** An invitation to sign up (IOTC_SIGNUP=invite): the code itself is shown once and never stored. */
export interface Invite {
  codeHash: string;
  /** Only this email may use it; null = anyone with the code. */
  email: string | null;
  createdAt: number;
  usedAt: number | null;
  usedEmail: string | null;
}
