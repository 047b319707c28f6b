// The Slack adapter's entry, as bot/main.ts imports it.

export { type SlackAdapter, type SlackOptions, startSlack } from './app.ts';
