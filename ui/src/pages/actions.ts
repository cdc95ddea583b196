// The app actions shared by the list and the detail page: one call each; failures come back as
// a sentence for the page to show.
import * as api from '../lib/api';

export type Action = 'start' | 'stop' | 'restart' | 'upgrade';

export async function run(action: Action, name: string): Promise<string | null> {
  try {
    if (action === 'start') await api.startApp(name);
    else if (action === 'stop') await api.stopApp(name);
    else if (action === 'restart') await api.restartApp(name);
    else await api.upgradeApp(name);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

export const canStart = (status: string) => status === 'stopped' || status === 'error' || status === 'backoff';
export const canStop = (status: string) => status === 'running' || status === 'starting' || status === 'backoff' || status === 'upgrading';
