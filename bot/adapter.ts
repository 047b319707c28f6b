// What every chat front (playground, Discord, Slack) is to the main program: started with
// the app, stopped on shutdown.

export interface Adapter {
  readonly name: string;
  /** where users reach it, for the log: a URL, a bot name */
  readonly address: string;
  stop(): Promise<void>;
}
