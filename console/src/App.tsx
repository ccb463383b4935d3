import { useCallback, useEffect, useState } from "react";
import { api, ApiError, setUnauthorizedHandler } from "./lib/api";
import { can } from "./lib/permissions";
import { match, navigate, useLocation } from "./lib/router";
import type { Me } from "./lib/types";
import { Link } from "./components/Link";
import { Login } from "./pages/Login";
import { Clusters } from "./pages/Clusters";
import { ClusterPage } from "./pages/ClusterPage";
import { CreateCluster } from "./pages/CreateCluster";
import { Hosts } from "./pages/Hosts";
import { Packages } from "./pages/Packages";
import { Tasks } from "./pages/Tasks";
import { TaskPage } from "./pages/TaskPage";

type Theme = "dark" | "light";

function initialTheme(): Theme {
  const saved = localStorage.getItem("obpilot-theme");
  if (saved === "dark" || saved === "light") return saved;
  return window.matchMedia?.("(prefers-color-scheme: light)").matches ? "light" : "dark";
}

export function App() {
  const location = useLocation();
  const [me, setMe] = useState<Me | null>();
  const [theme, setTheme] = useState<Theme>(initialTheme);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("obpilot-theme", theme);
  }, [theme]);

  const toLogin = useCallback(() => {
    setMe(null);
    if (location.path !== "/login") {
      const next = window.location.pathname + window.location.search;
      navigate(`/login?next=${encodeURIComponent(next)}`, { replace: true });
    }
  }, [location.path]);

  useEffect(() => setUnauthorizedHandler(toLogin), [toLogin]);

  useEffect(() => {
    let live = true;
    api<Me>("/api/v2/iam/users/me", { quiet401: true })
      .then((user) => live && setMe(user))
      .catch((error: unknown) => {
        if (!live) return;
        if (error instanceof ApiError && error.status === 401) toLogin();
        else setMe(null);
      });
    return () => {
      live = false;
    };
    // Once, at start: later expiries come through the 401 handler.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  if (location.path === "/login") {
    return (
      <Login
        onLoggedIn={(user) => {
          setMe(user);
          const next = location.query.get("next");
          navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/clusters", { replace: true });
        }}
      />
    );
  }
  if (me === undefined) return <p className="loading">Loading…</p>;
  if (me === null) {
    return (
      <p className="loading">
        Not logged in. <Link to="/login">Log in</Link>
      </p>
    );
  }

  async function logout(): Promise<void> {
    try {
      await api("/api/v2/iam/logout", { method: "POST" });
    } finally {
      setMe(null);
      navigate("/login", { replace: true });
    }
  }

  let page;
  let params: Record<string, string> | undefined;
  if (location.path === "/" || location.path === "/clusters") page = <Clusters me={me} />;
  else if (location.path === "/clusters/new") page = <CreateCluster me={me} />;
  else if ((params = match("/clusters/:id", location.path))) page = <ClusterPage key={params.id} id={Number(params.id)} me={me} />;
  else if (location.path === "/tasks") page = <Tasks />;
  else if ((params = match("/tasks/:id", location.path))) page = <TaskPage key={params.id} id={Number(params.id)} me={me} />;
  else if (location.path === "/hosts") page = <Hosts me={me} />;
  else if (location.path === "/packages") page = <Packages me={me} />;
  else
    page = (
      <section>
        <h1>Not found</h1>
        <p>
          No page at {location.path}. <Link to="/clusters">Clusters</Link>
        </p>
      </section>
    );

  const section = ["tasks", "hosts", "packages"].find((s) => location.path.startsWith(`/${s}`)) ?? "clusters";
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/clusters" className="brand">
          obpilot
        </Link>
        <nav aria-label="Main">
          <Link to="/clusters" aria-current={section === "clusters" ? "page" : undefined}>
            Clusters
          </Link>
          <Link to="/tasks" aria-current={section === "tasks" ? "page" : undefined}>
            Tasks
          </Link>
          {can(me.permissions, "HOST", "*", "READ") && (
            <Link to="/hosts" aria-current={section === "hosts" ? "page" : undefined}>
              Hosts
            </Link>
          )}
          {can(me.permissions, "PACKAGE", "*", "READ") && (
            <Link to="/packages" aria-current={section === "packages" ? "page" : undefined}>
              Packages
            </Link>
          )}
        </nav>
        <div className="topbar-end">
          <button
            type="button"
            className="button ghost"
            onClick={() => setTheme(theme === "dark" ? "light" : "dark")}
            aria-label={`Switch to the ${theme === "dark" ? "light" : "dark"} theme`}
          >
            {theme === "dark" ? "☀" : "☾"}
          </button>
          <span className="user" title={me.roles.join(", ")}>
            {me.username}
          </span>
          <button type="button" className="button ghost" onClick={() => void logout()}>
            Log out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}
