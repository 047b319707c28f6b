// Configuration: one schema (config/keys.ts) for environment variables and an optional JSON
// file named by CLORA_CONFIG holding the same keys; the environment wins over the file.
//
//   const config = loadConfig(process.env, { role: 'bot' });   // throws ConfigError listing every bad key
//   log.info(redact(config));                                    // tokens and secrets masked
//
// describeConfigKeys() lists the keys for the README's table (configKeysMarkdown renders it).
import { configFileKey, configKeys } from './keys.ts';

export type {
  CivitaiConfig,
  Config,
  ConfigIssue,
  DiscordConfig,
  EngineConfig,
  LimitsConfig,
  LoadOptions,
  OpsConfig,
  PlaygroundConfig,
  QueueConfig,
  SlackConfig,
} from './load.ts';
export { ConfigError, loadConfig } from './load.ts';
export { redact, redactText } from './redact.ts';

export interface ConfigKeyDoc {
  name: string;
  /** How the default reads; absent when the key has none (unset means off or not needed). */
  default?: string;
  description: string;
  /** What a value must look like, as errors say it. */
  expects: string;
  secret: boolean;
}

export function describeConfigKeys(): ConfigKeyDoc[] {
  const file: ConfigKeyDoc = {
    name: configFileKey,
    description: 'JSON file holding any of these keys, e.g. {"ENGINE_DEVICE": "cuda"}; the environment wins',
    expects: 'a path to a JSON file (environment only)',
    secret: false,
  };
  return [
    file,
    ...Object.entries(configKeys).map(([name, key]) => ({
      name,
      default: key.defaultText,
      description: key.description,
      expects: key.expects,
      secret: key.secret,
    })),
  ];
}

/** The keys as plain text for a terminal: name, default and meaning, one key a line. */
export function configKeysText(): string {
  const keys = describeConfigKeys();
  const width = Math.max(...keys.map((k) => k.name.length));
  return keys
    .map(
      (k) =>
        `  ${k.name.padEnd(width)}  ${k.description}${k.default === undefined ? '' : ` (default: ${k.default})`}${k.secret ? ' (secret)' : ''}`,
    )
    .join('\n');
}

/** The README's table of keys, as Markdown. */
export function configKeysMarkdown(): string {
  const cell = (s: string) => s.replaceAll('|', '\\|');
  const rows = describeConfigKeys().map(
    (k) =>
      `| \`${k.name}\` | ${k.default === undefined ? '' : k.default.includes(' ') ? cell(k.default) : `\`${cell(k.default)}\``} | ${cell(k.description)}${k.secret ? ' (secret)' : ''} |`,
  );
  return ['| Key | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
