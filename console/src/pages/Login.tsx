import { useState } from "react";
import { api, describe } from "../lib/api";
import { useTitle } from "../lib/useTitle";
import type { Me } from "../lib/types";

export function Login({ onLoggedIn }: { onLoggedIn: (me: Me) => void }) {
  const [username, setUsername] = useState("admin");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  useTitle("Log in");

  return (
    <main id="main" className="login">
      <form
        className="card login-card"
        onSubmit={(event) => {
          event.preventDefault();
          setBusy(true);
          setError(undefined);
          api<Me>("/api/v2/iam/login", { method: "POST", body: { username, password }, quiet401: true })
            .then(onLoggedIn)
            .catch((failure: unknown) => setError(describe(failure)))
            .finally(() => setBusy(false));
        }}
      >
        <h1>obpilot</h1>
        <p className="muted">Log in to the console</p>
        <label htmlFor="username">User name</label>
        <input id="username" className="input" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required />
        <label htmlFor="password">Password</label>
        <input
          id="password"
          className="input"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          required
          autoFocus
        />
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="button primary" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
      </form>
    </main>
  );
}
