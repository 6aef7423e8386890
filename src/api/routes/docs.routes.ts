import path from 'node:path';
import { Router, type RequestHandler } from 'express';

/**
 * GET /docs: the OpenAPI document (/openapi.json) rendered as an API reference page by Swagger UI
 * (swagger-ui-dist, pinned). Every asset comes from this API, none from a CDN: deployments may have
 * no internet. The Content-Security-Policy holds the page to that (scripts, styles, images and
 * requests from this origin only), and Swagger UI's online validator badge is switched off.
 */
export const DOCS_PATH = '/docs';
const ASSETS_PATH = '/docs/assets';

const SWAGGER_UI_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));
/** The only files of the package that are served, by the name the page asks for. */
const VENDOR_ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  // Swagger UI sets style attributes at run time.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>vm-tenant API reference</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" type="image/png" href="${ASSETS_PATH}/favicon-32x32.png">
  <link rel="stylesheet" href="${ASSETS_PATH}/swagger-ui.css">
</head>
<body>
  <div id="api-reference"></div>
  <script src="${ASSETS_PATH}/swagger-ui-bundle.js"></script>
  <script src="${ASSETS_PATH}/init.js"></script>
</body>
</html>
`;

// An external script rather than an inline one, so the policy needs no 'unsafe-inline' for scripts.
const INIT_SCRIPT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#api-reference',
  deepLinking: true,
  validatorUrl: null,
  docExpansion: 'list',
  defaultModelsExpandDepth: 0,
});
`;

const setPageHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  next();
};

/** The assets, as middleware (static files, not API operations): only the names listed above. */
function docAssets(): RequestHandler {
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const name = req.path.replace(/^\//, '');
    if (name === 'init.js') {
      res.type('text/javascript; charset=utf-8').setHeader('Cache-Control', 'no-cache');
      res.send(INIT_SCRIPT);
      return;
    }
    const type = VENDOR_ASSETS[name];
    if (!type) return next();
    res.setHeader('Cache-Control', 'public, max-age=86400');
    res.sendFile(path.join(SWAGGER_UI_DIR, name), { headers: { 'Content-Type': type } }, (error) => {
      if (error) next(error);
    });
  };
}

export function docsRoutes(): Router {
  const router = Router();
  router.use(DOCS_PATH, setPageHeaders);
  router.use(ASSETS_PATH, docAssets());
  router.get(DOCS_PATH, (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(PAGE);
  });
  return router;
}
