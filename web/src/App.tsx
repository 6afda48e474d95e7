import { useQueryClient } from "@tanstack/react-query";
import { Suspense, lazy, useEffect, useState } from "react";
import { Navigate, NavLink, Outlet, Route, Routes, useLocation, useParams } from "react-router";

import { getApiKey, onUnauthorized, setApiKey } from "./api/client";
import { Loading } from "./components/ui";
import { AgentEditPage } from "./pages/AgentEdit";
import { AgentsPage } from "./pages/Agents";
import { CampaignsPage } from "./pages/Campaigns";
import { KnowledgeBasePage, KnowledgeBasesPage } from "./pages/KnowledgeBases";
import { PhoneNumbersPage } from "./pages/PhoneNumbers";
import { PublishableKeysPage } from "./pages/PublishableKeys";
import { SessionDetailPage, SessionsPage } from "./pages/Sessions";
import { SignInPage } from "./pages/SignIn";
import { WebhooksPage } from "./pages/Webhooks";
import { WorkersPage } from "./pages/Workers";

// The Talk page carries livekit-client (WebRTC), most of the bundle: it loads when first opened.
const TalkPage = lazy(() => import("./pages/Talk").then((m) => ({ default: m.TalkPage })));

export function App() {
  const [signedIn, setSignedIn] = useState(() => !!getApiKey());
  const qc = useQueryClient();
  useEffect(() => {
    const unsubscribe = onUnauthorized(() => {
      setApiKey(null);
      setSignedIn(false);
      qc.clear();
    });
    return () => {
      unsubscribe();
    };
  }, [qc]);
  if (!signedIn) return <SignInPage onSignedIn={() => setSignedIn(true)} />;
  const signOut = () => {
    setApiKey(null);
    qc.clear();
    setSignedIn(false);
  };
  return (
    <Routes>
      <Route element={<Shell onSignOut={signOut} />}>
        <Route index element={<Navigate to="/agents" replace />} />
        <Route path="agents" element={<AgentsPage />} />
        <Route path="agents/new" element={<AgentEditPage />} />
        <Route path="agents/:id" element={<AgentEditPage />} />
        <Route path="knowledge" element={<KnowledgeBasesPage />} />
        <Route path="knowledge/:id" element={<KnowledgeBasePage />} />
        <Route
          path="talk"
          element={
            <Suspense fallback={<Loading what="the Talk page" />}>
              <TalkPage />
            </Suspense>
          }
        />
        <Route path="sessions" element={<SessionsPage />} />
        <Route path="sessions/:id" element={<SessionDetailPage />} />
        {/* the page's address before it was named Sessions: old links still open it */}
        <Route path="calls" element={<Navigate to="/sessions" replace />} />
        <Route path="calls/:id" element={<CallRedirect />} />
        <Route path="phone-numbers" element={<PhoneNumbersPage />} />
        <Route path="campaigns" element={<CampaignsPage />} />
        <Route path="workers" element={<WorkersPage />} />
        <Route path="publishable-keys" element={<PublishableKeysPage />} />
        <Route path="webhooks" element={<WebhooksPage />} />
        <Route path="*" element={<Navigate to="/agents" replace />} />
      </Route>
    </Routes>
  );
}

function CallRedirect() {
  const { id } = useParams();
  return <Navigate to={`/sessions/${id ?? ""}`} replace />;
}

const NAV = [
  { to: "/agents", label: "Agents", icon: "M12 3a4 4 0 110 8 4 4 0 010-8zm-7 17a7 7 0 0114 0" },
  { to: "/knowledge", label: "Knowledge bases", icon: "M4 5a2 2 0 012-2h12v16H6a2 2 0 00-2 2V5zm0 16h14" },
  { to: "/talk", label: "Talk", icon: "M12 3a3 3 0 013 3v6a3 3 0 01-6 0V6a3 3 0 013-3zm-7 9a7 7 0 0014 0M12 19v3" },
  { to: "/sessions", label: "Sessions", icon: "M4 6h16M4 12h16M4 18h10" },
  { to: "/phone-numbers", label: "Phone numbers", icon: "M5 4h4l2 5-3 2a11 11 0 005 5l2-3 5 2v4a2 2 0 01-2 2A17 17 0 013 6a2 2 0 012-2" },
  { to: "/campaigns", label: "Campaigns", icon: "M3 11l15-6v14L3 13zM7 13v5" },
  { to: "/workers", label: "Workers", icon: "M4 4h16v6H4zM4 14h16v6H4zM8 7h.01M8 17h.01" },
  { to: "/publishable-keys", label: "Publishable keys", icon: "M15 7a4 4 0 11-3.5 6H9l-2 2-2-2 2-2h4.5A4 4 0 0115 7zM16 10h.01" },
  { to: "/webhooks", label: "Webhooks", icon: "M4 12h4l3-7 4 14 3-7h2" },
];

// Pages other issues add; they take these places in the nav.
const SOON: { label: string; icon: string }[] = [];

function Icon({ d }: { d: string }) {
  return (
    <svg width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" strokeLinejoin="round" aria-hidden>
      <path d={d} />
    </svg>
  );
}

export function BrandMark() {
  return (
    <span className="brand-mark">
      <svg width="18" height="18" viewBox="0 0 32 32" aria-hidden>
        <path d="M6 12v8M11 8v16M16 12v8M21 9v14M26 13v6" stroke="white" strokeWidth="2.6" strokeLinecap="round" />
      </svg>
    </span>
  );
}

function Shell({ onSignOut }: { onSignOut: () => void }) {
  const location = useLocation();
  useEffect(() => {
    window.scrollTo(0, 0);
  }, [location.pathname]);
  return (
    <div className="shell">
      <nav className="sidebar" aria-label="Main">
        <div className="brand">
          <BrandMark /> Stimm
        </div>
        <div className="nav-section">Build</div>
        {NAV.slice(0, 2).map((n) => (
          <NavLink key={n.to} to={n.to} className="nav-link">
            <Icon d={n.icon} /> {n.label}
          </NavLink>
        ))}
        <div className="nav-section">Operate</div>
        {NAV.slice(2).map((n) => (
          <NavLink key={n.to} to={n.to} className="nav-link">
            <Icon d={n.icon} /> {n.label}
          </NavLink>
        ))}
        {SOON.map((n) => (
          <span key={n.label} className="nav-link soon" title="Coming soon">
            <Icon d={n.icon} /> {n.label} <span className="tag">soon</span>
          </span>
        ))}
        <div className="sidebar-foot">
          <span>Signed in with an API key</span>
          <button className="btn sm ghost" style={{ color: "#c9cdd6", justifyContent: "flex-start", padding: 0 }} onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </nav>
      <main className="main">
        <div className="page">
          <Outlet />
        </div>
      </main>
    </div>
  );
}
