import { useEffect } from "react";

/** The window's title names the page (screen readers announce it, tabs show it). */
export function useTitle(title: string | undefined): void {
  useEffect(() => {
    if (title) document.title = `${title} · obpilot`;
  }, [title]);
}
