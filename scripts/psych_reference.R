# Reference outputs of R's psych for tests/test_factors_psych.py (run through scripts/psych_reference.py).
#
# Usage: Rscript scripts/psych_reference.R DIR
# Reads DIR/<name>.csv (first column an id) for each data set listed in DIR/datasets.json ({name, transform, maxk}),
# and DIR/tetrachoric_tables.csv; writes DIR/<name>.json and DIR/tetrachoric.json. Also writes DIR/bfi.csv (psych's
# bfi, the 25 items, complete cases) before reading the list, so bfi can be one of the data sets.
# Needs: r-base-core, r-cran-psych, r-cran-gparotation, r-cran-jsonlite (Debian).
suppressPackageStartupMessages({library(psych); library(GPArotation); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[1] else "tests/data/psych"

bfi_items <- na.omit(psych::bfi[, 1:25])
write.csv(data.frame(respondent = rownames(bfi_items), bfi_items), file.path(dir, "bfi.csv"), row.names = FALSE,
          quote = FALSE)

one <- function(name, transform, maxk) {
  x <- read.csv(file.path(dir, paste0(name, ".csv")), check.names = FALSE)
  x <- as.matrix(x[, -1])
  if (transform == "log1p") x <- log1p(x)
  n <- nrow(x); p <- ncol(x)
  R <- cor(x)
  k <- KMO(R)
  b <- cortest.bartlett(R, n = n)
  set.seed(1)
  pa <- suppressWarnings(suppressMessages(fa.parallel(x, fa = "pc", n.iter = 100, quant = 0.95, plot = FALSE)))
  v <- suppressWarnings(suppressMessages(VSS(R, n = maxk, n.obs = n, plot = FALSE)))
  fits <- list()
  for (K in 1:maxk) {
    f <- suppressWarnings(suppressMessages(fa(R, K, n.obs = n, fm = "minres", rotate = "oblimin", warnings = FALSE)))
    L <- unclass(f$loadings)
    entry <- list(K = K, loadings = L, communality = unname(f$communality), uniquenesses = unname(f$uniquenesses),
                  Phi = if (is.null(f$Phi)) NULL else unclass(f$Phi), chi2 = f$STATISTIC, df = f$dof, p = f$PVAL,
                  rmsea = unname(f$RMSEA[1]), rmsea_lower = unname(f$RMSEA[2]), rmsea_upper = unname(f$RMSEA[3]),
                  tli = f$TLI, bic = f$BIC, rmsr = f$rms, complexity = unname(f$complexity))
    if (K <= 6) {
      entry$weights_regression <- unclass(factor.scores(R, f, method = "Thurstone")$weights)
      entry$weights_bartlett <- unclass(factor.scores(R, f, method = "Bartlett")$weights)
      pr <- suppressWarnings(suppressMessages(principal(R, K, rotate = "oblimin")))
      entry$principal_loadings <- unclass(pr$loadings)
      if (K >= 2) {
        om <- suppressWarnings(suppressMessages(omega(R, nfactors = K, n.obs = n, plot = FALSE, fm = "minres")))
        entry$omega_total <- om$omega.tot
        entry$omega_h <- om$omega_h
      }
    }
    fits[[K]] <- entry
  }
  out <- list(name = name, transform = transform, n = n, p = p, words = colnames(x),
              kmo_overall = k$MSA, kmo_per_word = unname(k$MSAi),
              bartlett_chi2 = b$chisq, bartlett_df = b$df, bartlett_p = b$p.value,
              eigenvalues = eigen(R, only.values = TRUE)$values,
              k_parallel_pc = pa$ncomp, map = v$map, vss1 = v$cfit.1, vss2 = v$cfit.2, fits = fits,
              psych_version = as.character(packageVersion("psych")), r_version = R.version.string)
  writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null", na = "null", matrix = "rowmajor"),
             file.path(dir, paste0(name, ".json")))
}

sets <- fromJSON(file.path(dir, "datasets.json"))
for (i in seq_len(nrow(sets))) one(sets$name[i], sets$transform[i], sets$maxk[i])

tab <- as.matrix(read.csv(file.path(dir, "tetrachoric_tables.csv")))
rho <- apply(tab, 1, function(t) suppressWarnings(suppressMessages(
  tetrachoric(matrix(t, 2, 2, byrow = TRUE), correct = 0.5)$rho)))
writeLines(toJSON(list(tables = tab, rho = unname(rho), psych_version = as.character(packageVersion("psych"))),
                  digits = NA, matrix = "rowmajor"), file.path(dir, "tetrachoric.json"))
