// The API reference at /api/docs: Swagger UI renders the OpenAPI document the page names.
// Read-only on purpose: "Try it out" would send keys from a browser, and a secret key that
// arrives with an Origin header is refused and flagged as leaked.
document.addEventListener("DOMContentLoaded", () => {
  const target = document.getElementById("api-reference");
  window.SwaggerUIBundle({
    url: target.dataset.openapiUrl,
    domNode: target,
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    supportedSubmitMethods: [],
    validatorUrl: null,
  });
});
