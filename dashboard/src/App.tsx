import { useEffect, useState } from 'react';
import { parseRoute, type Route } from './lib';
import { CapacityPage } from './pages/CapacityPage';
import { parseScheduleRoute, SchedulePage } from './pages/SchedulePage';
import { SweepPage } from './pages/SweepPage';
import { SweepsList } from './pages/SweepsList';
import { TrialPage } from './pages/TrialPage';

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onHash = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  return route;
}

export function App() {
  const route = useRoute();
  // Read on every route change (useRoute re-renders on hashchange); lib's Route does not know schedules.
  const schedule = parseScheduleRoute(window.location.hash);
  return (
    <>
      <nav className="top">
        <a href="#/" className="brand">
          ▤ Ladder
        </a>
        <a href="#/">sweeps</a>
        <a href="#/capacity">capacity</a>
        <a href="#/schedules">schedules</a>
        <a href="/graphql" target="_blank" rel="noreferrer">
          GraphQL
        </a>
      </nav>
      <main>
        {schedule ? <SchedulePage key={schedule.id ?? ''} id={schedule.id} /> : route.page === 'capacity' ? <CapacityPage key={route.id ?? ''} id={route.id} /> : route.page === 'sweep' ? <SweepPage key={route.id} id={route.id} /> : route.page === 'trial' ? <TrialPage key={route.id} id={route.id} /> : <SweepsList />}
      </main>
    </>
  );
}
